"""Root pytest configuration: fixtures shared by several test folders.

`tests.fixtures.redis_servers` starts real redis-server processes (and a 3-node cluster) on
free ports for the tests that need them, and stops them afterwards.
"""

pytest_plugins = ["tests.fixtures.redis_servers"]
