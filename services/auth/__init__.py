"""The auth service: accounts, argon2id password hashes, signed expiring tokens, logout."""
