"""Each component README's inputs/outputs table matches the component's signature and docstring."""

import os

import pytest

from tools import component_readmes as docs

FOLDERS = docs.component_modules()


def test_every_component_folder_is_discovered():
    assert {"ingest", "train", "evaluate", "push"} <= set(FOLDERS)


@pytest.mark.parametrize("folder", FOLDERS)
def test_readme_table_matches_signature_and_docstring(folder):
    component = docs.load_component(folder)
    path = docs.readme_path(folder)
    assert os.path.exists(path), f"components/{folder}/README.md is missing"
    text = open(path, encoding="utf-8").read()
    assert docs.current_table(text) == docs.render_table(component), (
        f"components/{folder}/README.md is out of date: run `make readmes`"
    )


@pytest.mark.parametrize("folder", FOLDERS)
def test_every_parameter_and_output_is_documented_in_the_docstring(folder):
    component = docs.load_component(folder)
    described = docs.docstring_args(component.python_func)
    names = [name for name, *_ in docs.signature_rows(component)]
    undocumented = [n for n in names if not described.get(n)]
    assert not undocumented, f"{folder}: no docstring description for {undocumented}"


@pytest.mark.parametrize("folder", FOLDERS)
def test_component_uses_the_images_module_and_the_image_provided_kfp(folder):
    component = docs.load_component(folder)
    container = component.component_spec.implementation.container
    assert container.image.startswith("ghcr.io/kfpkit/kfpkit-"), container.image
    # install_kfp_package=False: the command must not pip-install kfp at run time
    assert "pip install" not in " ".join(container.command or [])
