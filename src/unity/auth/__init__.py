"""Hub tokens: scoped credentials for people and scripts."""
