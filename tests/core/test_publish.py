"""kfpkit.core.publish: a published folder gets the mode os.makedirs gives, so other users read it."""

import os
import stat

from kfpkit.core.publish import publish_directory, staging_directory


def test_a_published_folder_has_the_makedirs_mode_not_mkdtemps_0700(tmp_path):
    old = os.umask(0o002)
    try:
        reference = tmp_path / "made"
        os.makedirs(reference)
        staging = staging_directory(str(tmp_path / "out" / "model"))
        (open(os.path.join(staging, "weights"), "w")).close()
        publish_directory(staging, str(tmp_path / "out" / "model"))
    finally:
        os.umask(old)
    mode = stat.S_IMODE(os.stat(tmp_path / "out" / "model").st_mode)
    assert mode == stat.S_IMODE(os.stat(reference).st_mode) == 0o775
    assert os.listdir(tmp_path / "out") == ["model"]
