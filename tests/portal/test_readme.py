"""The README's everyday-commands table tells the truth about simulate_jamf's options (issue 15)."""

from pathlib import Path

from devices.management.commands.simulate_jamf import Command

README = Path(__file__).resolve().parents[2] / "README.md"
DJANGO_OPTIONS = {"help", "version", "verbosity", "settings", "pythonpath", "traceback", "no_color", "force_color",
                  "skip_checks"}


def test_readme_lists_every_simulate_jamf_option():
    parser = Command().create_parser("manage.py", "simulate_jamf")
    options = [option for action in parser._actions if action.dest not in DJANGO_OPTIONS
               for option in action.option_strings if option.startswith("--")]
    assert options, "simulate_jamf has no options?"
    row = next(line for line in README.read_text().splitlines() if line.startswith("| `manage.py simulate_jamf"))
    missing = [option for option in options if option not in row]
    assert not missing, "README's simulate_jamf row lacks %s" % missing
