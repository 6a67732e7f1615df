"""The machine named beside every result row: its CPU model and family come from the first
processor in /proc/cpuinfo, so speed rows from different hosts can be told apart."""

from kshot.cli.common import machine_description

CPUINFO = """processor\t: 0
vendor_id\t: AuthenticAMD
cpu family\t: 25
model\t\t: 1
model name\t: AMD EPYC 7B13

processor\t: 1
cpu family\t: 26
model name\t: Some Other CPU
"""


def test_names_the_first_processors_model_and_family(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text(CPUINFO)
    text = machine_description(str(info))
    assert "AMD EPYC 7B13 (family 25, " in text
    assert "Other" not in text and "family 26" not in text


def test_without_cpuinfo_it_still_names_the_architecture(tmp_path):
    text = machine_description(str(tmp_path / "missing"))
    assert "family" not in text and "torch" in text
