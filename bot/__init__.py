"""promisebot: Kratix Promises, Destinations and State Stores driven from a Git platform repo."""

__version__ = "0.1.0"
