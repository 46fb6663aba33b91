"""README front matter: the Hugging Face Space configuration (https://huggingface.co/docs/hub/spaces-config-reference)."""
from pathlib import Path

import gradio
import yaml

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
REQUIRED = ("title", "sdk", "sdk_version", "python_version", "app_file", "short_description", "models", "tags", "license")


def front_matter() -> dict:
    text = README.read_text(encoding="utf-8")
    assert text.startswith("---\n"), "README.md must open with the Space's YAML front matter"
    meta = yaml.safe_load(text.split("---\n", 2)[1])
    assert isinstance(meta, dict)
    return meta


def test_front_matter_parses_and_has_the_space_keys():
    meta = front_matter()
    assert [k for k in REQUIRED if not meta.get(k)] == []
    assert meta["sdk"] == "gradio"
    assert isinstance(meta["python_version"], str)  # quoted: an unquoted 3.10 would read as 3.1
    assert len(meta["short_description"]) <= 60
    assert "sentence-transformers/all-MiniLM-L6-v2" in meta["models"]
    assert isinstance(meta["tags"], list)


def test_sdk_version_is_the_installed_gradio():
    assert str(front_matter()["sdk_version"]) == gradio.__version__


def test_app_file_exists():
    assert (ROOT / front_matter()["app_file"]).is_file()


def test_requirements_admit_the_sdk_version():
    from packaging.specifiers import SpecifierSet

    lines = [l.split("#")[0].strip() for l in (ROOT / "requirements.txt").read_text().splitlines()]
    spec = next(l[len("gradio"):] for l in lines if l.startswith("gradio") and not l.startswith("gradio_"))
    assert str(front_matter()["sdk_version"]) in SpecifierSet(spec)


def test_readme_fits_on_two_screens():
    assert len(README.read_text(encoding="utf-8").splitlines()) <= 250
