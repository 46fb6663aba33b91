"""The Hub's reachability check and the reasons a Hub dataset fails to load, without a network: a local listening
socket stands for the Hub, a recording stand-in for ``socket.create_connection`` shows where it would connect."""
from __future__ import annotations

import socket

import datasets
import pytest

import cott.hub as hub


@pytest.fixture
def online(monkeypatch):
    for name in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", False)


@pytest.fixture
def dialled(monkeypatch):
    calls = []

    class Conn:
        def close(self):
            calls.append("closed")

    def connect(address, timeout=None):
        calls.append((address, timeout))
        return Conn()

    monkeypatch.setattr(socket, "create_connection", connect)
    return calls


def test_a_listening_endpoint_is_reachable_a_closed_one_is_not(monkeypatch):
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{server.getsockname()[1]}")
        assert hub._reachable() is True
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens on the discard port
    assert hub._reachable() is False


@pytest.mark.parametrize("endpoint, address", [
    (None, ("huggingface.co", 443)),  # the public Hub unless HF_ENDPOINT says otherwise
    ("https://hub.example.org", ("hub.example.org", 443)),
    ("http://hub.example.org", ("hub.example.org", 80)),
    ("http://hub.example.org:8080", ("hub.example.org", 8080)),
])
def test_the_check_dials_the_endpoints_host_and_port_once_within_the_limit(monkeypatch, dialled, endpoint, address):
    if endpoint is None:
        monkeypatch.delenv("HF_ENDPOINT", raising=False)
    else:
        monkeypatch.setenv("HF_ENDPOINT", endpoint)
    assert hub._reachable() is True
    assert dialled == [(address, hub.REACH_SECONDS), "closed"]


def test_why_a_hub_dataset_failed_names_the_cause(monkeypatch, online):
    from datasets.exceptions import DatasetNotFoundError

    assert hub._why(DatasetNotFoundError("no such dataset")).startswith("neither a local file or folder nor a dataset")
    assert "DatasetNotFoundError: no such dataset" in hub._why(DatasetNotFoundError("no such dataset"))
    assert "could not be reached (ConnectionError: refused)" in hub._why(ConnectionError("refused"))
    assert "could not be reached (TimeoutError" in hub._why(TimeoutError("slow"))
    other = hub._why(KeyError("x" * 1000))
    assert "loading it from the Hugging Face Hub failed (KeyError: 'xxx" in other
    assert len(other) - len(other.split("(", 1)[0]) - 2 == 300  # the cause is cut to 300 characters
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    offline = hub._why(ConnectionError("refused"))
    assert "is offline (HF_HUB_OFFLINE / HF_DATASETS_OFFLINE is set) with no cached copy" in offline
    assert offline.endswith("(ConnectionError: refused)")


@pytest.mark.parametrize("value, offline", [("1", True), ("yes", True), ("ON", True), ("true", True), ("0", False),
                                            ("", False)])
def test_offline_is_read_from_either_variable(monkeypatch, online, value, offline):
    for name in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"):
        monkeypatch.setenv(name, value)
        assert hub._offline() is offline
        monkeypatch.delenv(name)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    assert hub._offline() is True


def test_an_unreachable_hub_is_named_by_its_endpoint(monkeypatch, online):
    from cott.data import DataError

    monkeypatch.delenv("HF_ENDPOINT", raising=False)
    monkeypatch.setattr(hub, "_reachable", lambda: False)
    with pytest.raises(DataError, match=r"^nobody/nothing: not a local file or folder, and the Hugging Face Hub "
                                        r"\(https://huggingface\.co\) could not be reached within 3 s: check the "
                                        r"network, or set HF_HUB_OFFLINE=1 to read a cached copy$"):
        hub.load_hub("nobody/nothing", "train", {"text": "text"})
