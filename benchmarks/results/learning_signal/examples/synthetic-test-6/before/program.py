import matplotlib.pyplot as plt
import numpy as np

categories = ["Desert Frontier Zone", "Desert Frontier Zone", "Desert Frontier Zone", "River Delta Region", "Desert Frontier Zone", "Desert Frontier Zone", "Desert Frontier Zone", "River Delta Region"]
x = np.arange(len(categories))
fig, ax = plt.subplots()
ax.plot(x, [15, 15, 15, 15, 15, 15, 15, 15], marker="o", color="#004d40", label="Team A")
ax.plot(x, [15, 15, 10, 13, 15, 13, 15, 10], marker="o", color="#004d40", label="2023")
ax.set_xticks(x, categories, rotation=30, ha="right")
ax.set_title("Units sold by region over the reporting period of 2023")
ax.set_xlabel("Region")
ax.set_ylabel("Units sold")
ax.legend(loc="upper right")
fig.tight_layout()
plt.savefig("chart.png")
