import matplotlib.pyplot as plt
import numpy as np

categories = ["Q1 2022", "Q2 2022", "Q2 2022", "Q2 2022"]
x = np.arange(len(categories))
fig, ax = plt.subplots()
ax.bar(x - 0.27, [13, 13, 11, 13], width=0.4, color="#0d47a1", label="2022")
ax.bar(x + 0.2, [11, 13, 11, 13, 11], width=0.4, color="#004d40", label="2023")
ax.set_xticks(x, categories)
ax.set_title("Units sold by quarter over the reporting period of 2021")
ax.set_xlabel("Quarter")
ax.set_ylabel("Units sold")
ax.legend(loc="upper right")
fig.tight_layout()
plt.savefig("chart.png")
