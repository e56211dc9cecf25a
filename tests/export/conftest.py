"""Export tests train tiny runs with the training tests' workspace fixtures."""

from tests.train.conftest import data_home, one_thread, train_ws  # noqa: F401 - fixtures, by name
