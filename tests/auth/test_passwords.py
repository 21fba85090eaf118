"""Password hashing: argon2id, right and wrong passwords, unknown users, and upgrading old hashes."""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher

from chorus.auth.passwords import Passwords

CHEAP = {"time_cost": 1, "memory_cost": 8, "parallelism": 1}
DUMMY_PASSWORD = "not a real password"  # what Passwords verifies against for unknown users


@pytest.fixture(scope="module")
def passwords() -> Passwords:
    return Passwords(PasswordHasher(**CHEAP))


def test_the_default_hash_is_argon2id_and_never_contains_the_password():
    hashed = Passwords().hash("correct horse battery")
    assert hashed.startswith("$argon2id$")
    assert "correct horse battery" not in hashed


def test_the_same_password_hashes_differently_each_time(passwords):
    assert passwords.hash("correct horse battery") != passwords.hash("correct horse battery")


def test_the_right_password_verifies(passwords):
    hashed = passwords.hash("correct horse battery")
    assert passwords.verify(hashed, "correct horse battery") is True


@pytest.mark.parametrize("attempt", ["wrong horse battery", "Correct horse battery", "correct horse battery ", ""])
def test_any_other_password_does_not(passwords, attempt):
    assert passwords.verify(passwords.hash("correct horse battery"), attempt) is False


@pytest.mark.parametrize("attempt", ["anything at all", DUMMY_PASSWORD, ""])
def test_an_unknown_user_never_verifies_even_with_the_dummy_password(passwords, attempt):
    assert passwords.verify(None, attempt) is False


@pytest.mark.parametrize("stored", ["", "not a hash", "$argon2id$v=19$m=8,t=1,p=1$broken"])
@pytest.mark.parametrize("attempt", ["correct horse battery", DUMMY_PASSWORD])
def test_a_corrupt_stored_hash_never_verifies(passwords, stored, attempt):
    assert passwords.verify(stored, attempt) is False


def test_a_hash_made_with_weaker_parameters_needs_rehashing():
    current = Passwords()
    weak = PasswordHasher(time_cost=1).hash("correct horse battery")
    assert current.verify(weak, "correct horse battery") is True  # still logs in
    assert current.needs_rehash(weak) is True
    assert current.needs_rehash(current.hash("correct horse battery")) is False
