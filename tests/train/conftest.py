import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:  # train_toy_rewards / tiny_assets are imported by name (module:attr reward paths)
    sys.path.insert(0, HERE)


@pytest.fixture(scope="session")
def tiny_assets(tmp_path_factory):
    from tiny_assets import build_assets

    return build_assets(tmp_path_factory.mktemp("tiny_assets"))

