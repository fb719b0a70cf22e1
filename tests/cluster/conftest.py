import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
TRAIN = os.path.join(os.path.dirname(HERE), "train")
for path in (HERE, TRAIN):  # tiny_assets, launch_helpers, train_toy_rewards, ray_cluster are imported by name
    if path not in sys.path:
        sys.path.insert(0, path)


@pytest.fixture(scope="session")
def tiny_assets(tmp_path_factory):
    from tiny_assets import build_assets

    return build_assets(tmp_path_factory.mktemp("tiny_assets"))
