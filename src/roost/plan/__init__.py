"""The cluster planner: what a GPU cluster can train, laid out how, for how long, at what cost.

`planner.make_plan` is the entry point; docs/planner.md gives the model and where its numbers come from.
"""
