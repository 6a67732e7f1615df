"""Task families as Gymnasium environments.

2D navigation (Finn et al. 2017, section 5.3, and their code's point environment): a point starts
at the origin and must reach a goal drawn uniformly from [-0.5, 0.5]^2; an action is a velocity,
clipped to [-0.1, 0.1] per axis; the reward is minus the distance to the goal after the move; an
episode ends within 0.01 of the goal (both axes), or after 100 steps.

Goal velocity (a second, different family, small enough for 2 cores): a point mass on a line with
inertia and friction; an action is a force in [-1, 1]; the reward is minus the gap between its
velocity and the task's goal velocity (drawn from [-1, 1]), minus a small cost of force. A task
changes the reward's target, not the place to go, so a policy must learn to hold a speed.

A user brings their own family as an `EnvFamily`: `sample(n, rng)` draws task parameters and
`make(task)` builds a Gymnasium environment for one of them; K copies of it are stepped side by
side through Gymnasium's SyncVectorEnv. The two families here also step K copies at once in numpy
(`make_vector`), which the sampler uses: the same dynamics, without a Python call per copy and step.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode, SyncVectorEnv, VectorEnv
from gymnasium.vector.utils import batch_space

HORIZON = 100


class EnvFamily:
    name = "family"

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        raise NotImplementedError

    def make(self, task: np.ndarray) -> gym.Env:
        raise NotImplementedError

    def make_vector(self, task: np.ndarray, k: int) -> VectorEnv:
        """K copies of the task's environment; each stops when its episode ends (no auto-reset)."""
        return SyncVectorEnv([lambda: self.make(task)] * k, autoreset_mode=AutoresetMode.DISABLED)


class BatchedTask(VectorEnv):
    """K copies of one task, stepped together in numpy; a finished copy is left as it ended."""

    metadata = {"autoreset_mode": AutoresetMode.DISABLED}

    def __init__(self, single: gym.Env, k: int):
        self.num_envs, self.single = k, single
        self.single_observation_space, self.single_action_space = single.observation_space, single.action_space
        self.observation_space = batch_space(single.observation_space, k)
        self.action_space = batch_space(single.action_space, k)
        self.steps = 0

    def reset(self, *, seed=None, options=None):
        self.steps = 0
        self.state = np.zeros((self.num_envs, 2))
        return self.state.astype(np.float32), {}

    def step(self, actions):
        self.steps += 1
        self.state, rewards, terminated = self.dynamics(self.state, np.asarray(actions, np.float64))
        truncated = np.full(self.num_envs, self.steps >= HORIZON)
        return self.state.astype(np.float32), rewards, terminated, truncated, {}

    def dynamics(self, state: np.ndarray, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        raise NotImplementedError


class PointNavigation(gym.Env):
    metadata = {"render_modes": []}

    def __init__(self, goal=None):
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (2,), np.float32)
        self.action_space = gym.spaces.Box(-0.1, 0.1, (2,), np.float32)
        self.goal = None if goal is None else np.asarray(goal, np.float64)
        self.position, self.steps = np.zeros(2), 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        if options and "goal" in options:
            self.goal = np.asarray(options["goal"], np.float64)
        elif self.goal is None:
            self.goal = self.np_random.uniform(-0.5, 0.5, 2)
        self.position, self.steps = np.zeros(2), 0
        return self.position.astype(np.float32), {"goal": self.goal.copy()}

    def step(self, action):
        self.position = self.position + np.clip(np.asarray(action, np.float64), -0.1, 0.1)
        self.steps += 1
        gap = self.position - self.goal
        reward = -float(np.hypot(*gap))
        terminated = bool(abs(gap[0]) < 0.01 and abs(gap[1]) < 0.01)
        return self.position.astype(np.float32), reward, terminated, self.steps >= HORIZON, {"goal": self.goal.copy()}


class GoalVelocity(gym.Env):
    metadata = {"render_modes": []}
    MASS, FRICTION, DT, FORCE_COST = 1.0, 0.1, 0.1, 0.05

    def __init__(self, goal_velocity=None):
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (2,), np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)
        self.goal_velocity = goal_velocity
        self.state, self.steps = np.zeros(2), 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        if options and "goal" in options:
            self.goal_velocity = float(np.asarray(options["goal"]).reshape(-1)[0])
        elif self.goal_velocity is None:
            self.goal_velocity = float(self.np_random.uniform(-1.0, 1.0))
        self.state, self.steps = np.zeros(2), 0  # position, velocity
        return self.state.astype(np.float32), {"goal": self.goal_velocity}

    def step(self, action):
        force = float(np.clip(np.asarray(action, np.float64).reshape(-1)[0], -1.0, 1.0))
        x, v = self.state
        v = v + self.DT * (force - self.FRICTION * v) / self.MASS
        self.state = np.array([x + self.DT * v, v])
        self.steps += 1
        reward = -abs(v - self.goal_velocity) - self.FORCE_COST * force**2
        return self.state.astype(np.float32), float(reward), False, self.steps >= HORIZON, {"goal": self.goal_velocity}


class BatchedNavigation(BatchedTask):
    def dynamics(self, state, actions):
        state = state + np.clip(actions, -0.1, 0.1)
        gap = state - self.single.goal
        return state, -np.hypot(gap[:, 0], gap[:, 1]), (np.abs(gap) < 0.01).all(1)


class BatchedGoalVelocity(BatchedTask):
    def dynamics(self, state, actions):
        e = self.single
        force = np.clip(actions[:, 0], -1.0, 1.0)
        v = state[:, 1] + e.DT * (force - e.FRICTION * state[:, 1]) / e.MASS
        state = np.stack([state[:, 0] + e.DT * v, v], 1)
        return state, -np.abs(v - e.goal_velocity) - e.FORCE_COST * force**2, np.zeros(self.num_envs, bool)


class Navigation2D(EnvFamily):
    name = "navigation-2d"

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return rng.uniform(-0.5, 0.5, (n, 2))

    def make(self, task: np.ndarray) -> gym.Env:
        return PointNavigation(goal=task)

    def make_vector(self, task: np.ndarray, k: int) -> VectorEnv:
        return BatchedNavigation(self.make(task), k)


class GoalVelocities(EnvFamily):
    name = "goal-velocity"

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return rng.uniform(-1.0, 1.0, (n, 1))

    def make(self, task: np.ndarray) -> gym.Env:
        return GoalVelocity(goal_velocity=float(task[0]))

    def make_vector(self, task: np.ndarray, k: int) -> VectorEnv:
        return BatchedGoalVelocity(self.make(task), k)


FAMILIES = {f.name: f for f in (Navigation2D(), GoalVelocities())}
