import matplotlib.pyplot as plt
import numpy as np

categories = ["Q3 2020", "Q4 2020", "Q1 2020", "Q4 2020", "Q3 2020"]
x = np.arange(len(categories))
fig, ax = plt.subplots()
ax.plot(x, [150, 110, 130, 111], marker="o", color="#33691e", label="Domestic")
ax.set_xticks(x, categories)
ax.set_title("Headcount per quarter")
ax.set_xlabel("Quarter")
ax.set_ylabel("Headcount")
ax.legend(loc="upper right")
fig.tight_layout()
plt.savefig("chart.png")
