"""gunicorn settings: ferrotick's teardown on each worker's graceful exit."""

from ferrotick.flask import worker_exit  # noqa: F401  (gunicorn calls it by this name)

graceful_timeout = 30
