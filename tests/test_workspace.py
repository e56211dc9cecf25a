import msgspec
import pytest

from roost.workspace import ConfigError, Workspace


class Section(msgspec.Struct, forbid_unknown_fields=True):
    rate: int = 10
    name: str = "x"


def test_defaults_fill_what_the_file_leaves_out(tmp_path) -> None:
    ws = Workspace(tmp_path).ensure()
    ws.config_path.write_text("[demo]\nrate = 3\n")
    assert Workspace(tmp_path).config("demo", Section) == Section(rate=3, name="x")
    assert Workspace(tmp_path).config("absent", Section) == Section()


def test_unknown_keys_and_wrong_types_are_clear_errors(tmp_path) -> None:
    ws = Workspace(tmp_path).ensure()
    ws.config_path.write_text("[demo]\nrat = 3\n")
    with pytest.raises(ConfigError, match=r"\[demo\].*rat"):
        Workspace(tmp_path).config("demo", Section)
    ws.config_path.write_text('[demo]\nrate = "fast"\n')
    with pytest.raises(ConfigError, match="Expected `int`"):
        Workspace(tmp_path).config("demo", Section)
