//! A real multi-node swarm on one host.
