"""Ray's token-authentication notice: left out of a local run, said in gnndist's words on joining a cluster."""

from __future__ import annotations

import logging
import os
import subprocess
import sys

import pytest

from gnndist.runtime import cluster

_LOCAL_RUN = """
from gnndist.runtime.cluster import init_ray, shutdown_ray
from ray._private.authentication.authentication_utils import is_token_auth_enabled
init_ray(num_cpus=1)
print("token authentication on:", is_token_auth_enabled())
shutdown_ray()
"""


def test_a_local_run_prints_no_token_notice_and_keeps_authentication_on():
    env = {k: v for k, v in os.environ.items() if k != "RAY_AUTH_MODE"}  # as a user's shell has it
    done = subprocess.run([sys.executable, "-c", _LOCAL_RUN], capture_output=True, text=True, env=env, timeout=120,
                          check=True)
    assert "token authentication on: True" in done.stdout
    assert "Token authentication" not in done.stdout + done.stderr, done.stderr


def test_only_the_notice_is_dropped_and_only_meanwhile(caplog):
    logger = logging.getLogger(cluster._TOKEN_LOGGER)
    with caplog.at_level(logging.WARNING, logger=cluster._TOKEN_LOGGER):
        with cluster._without_token_notice():
            logger.warning(cluster._TOKEN_NOTICE + ". Set RAY_AUTH_MODE=disabled to opt out.")
            logger.warning("Token authentication is disabled for this Ray cluster.")
        logger.warning(cluster._TOKEN_NOTICE + ".")
    assert [r.getMessage() for r in caplog.records] == ["Token authentication is disabled for this Ray cluster.",
                                                        cluster._TOKEN_NOTICE + "."]


@pytest.mark.parametrize("enabled, words", [(True, "is on for the cluster at HEAD:6379: this driver presented"),
                                            (False, "is off for the cluster at HEAD:6379: whoever reaches")])
def test_joining_a_cluster_says_what_its_mode_means(monkeypatch, caplog, enabled, words):
    from ray._private.authentication import authentication_utils

    monkeypatch.setattr(authentication_utils, "is_token_auth_enabled", lambda: enabled)
    with caplog.at_level(logging.WARNING, logger=cluster.__name__):
        cluster._say_token_auth("HEAD:6379")
    assert len(caplog.records) == 1 and words in caplog.records[0].getMessage()
