"""Meta-reinforcement learning (Finn et al. 2017, section 5.3): a task is a Markov decision process,
a Gymnasium environment; the inner loop is a policy-gradient step on a few trajectories."""
