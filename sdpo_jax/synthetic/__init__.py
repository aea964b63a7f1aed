"""Synthetic chart-to-code tasks written by this project, for learning at small scale.

A seeded generator (`generate`) makes chart specs (`spec`: bar, grouped bar, line, scatter,
pie) whose instruction states the data as text (`tasks`); each has a reference program the chart
env judges clean and defect levers (`levers`): careless choices that cause one defect kind,
traced to their own statement, on the tasks where they are defective. `program` writes the
reference or any careless variant with each lever's line span. Records, Tasks and the JSONL CLI
(`python -m sdpo_jax.synthetic write ...`) are in `tasks` and `__main__`.

Plain Python and numpy (it imports `envs` for contracts and colour maths): never imports jax.
"""
