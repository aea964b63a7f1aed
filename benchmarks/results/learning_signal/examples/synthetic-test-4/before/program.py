import matplotlib.pyplot as plt

fig, ax = plt.subplots()
ax.pie([13, 15, 18], labels=["Work", "Wind", "Wind"], explode=[0, 0.5, 0], startangle=90, counterclock=False)
ax.set_title("How the energy mix was divided over the whole of 2019")
fig.tight_layout()
plt.savefig("chart.png")
