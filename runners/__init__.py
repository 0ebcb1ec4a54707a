"""Pipeline runners: execute Kratix pipeline containers and return their outputs."""
