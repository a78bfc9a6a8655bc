"""``sottovoce bench engine``'s report: the issue's ratio stays engine / (transport + ratchet + commit), and the
extra figure with the protocol's mandated signatures added to the floor is printed beside it, labelled."""

from __future__ import annotations

import re
from dataclasses import replace

from engine.bench.engine import EngineFigures, ProfileFigures, Timing, commits_needed


def _profile(name: str, engine_us: float, transport_us: float, ratchet_us: float, commit_us: float) -> ProfileFigures:
    messages = 1000
    engine = Timing(messages, engine_us * messages / 1e6, 0.002, 0.004)
    transport = Timing(messages, transport_us * messages / 1e6, 0.001, 0.002)
    return ProfileFigures(name, engine, transport, ratchet_us, commit_us)


def _figures() -> EngineFigures:
    return EngineFigures(_profile("one way", 1000.0, 40.0, 20.0, 140.0),
                         _profile("ping-pong", 1800.0, 150.0, 90.0, 160.0),
                         _profile("concurrent", 800.0, 40.0, 20.0, 140.0),
                         envelope_bytes=1150.0, fsync_us=140.0, durable_per_message=0.5, rounds=3,
                         signatures_us=100.0)


def test_the_issue_ratio_is_engine_over_the_sum_of_the_floors() -> None:
    figures = _figures()
    lines = figures.report_lines()
    for profile in figures.profiles:
        floor = profile.transport.per_message_us + profile.ratchet_floor_us + profile.commit_floor_us
        line = next(line for line in lines if line.strip().startswith(profile.name + ":"))
        assert f"ratio {profile.engine.per_message_us / floor:.2f}x (target <= 1.50x)" in line
    assert figures.as_dict()["one_way_ratio"] == round(1000.0 / 200.0, 4)


def test_the_extra_figure_adds_the_signatures_to_the_floor_and_says_so() -> None:
    figures = _figures()
    lines = figures.report_lines()
    extra = [line for line in lines if "extra figure" in line]
    assert len(extra) == 1 and "not the issue's ratio" in extra[0]
    found = dict(re.findall(r"(one way|ping-pong|concurrent) (\d+\.\d+)x", extra[0]))
    for profile in figures.profiles:
        expected = profile.engine.per_message_us / (profile.floor_us + figures.signatures_us)
        assert found[profile.name] == f"{expected:.2f}"
    assert any("2 signatures and 2 recoveries" in line for line in lines)


def test_the_least_any_engine_could_take_counts_the_commits_each_scenario_needs_and_the_signatures() -> None:
    figures = _figures()
    profiles = [replace(p, commits_needed=commits_needed(p.name)) for p in figures.profiles]
    figures = replace(figures, one_way=profiles[0], ping_pong=profiles[1], concurrent=profiles[2])
    line = next(line for line in figures.report_lines() if line.strip().startswith("least any engine"))
    found = dict(re.findall(r"(one way|ping-pong|concurrent) (\d+\.\d+) us = (?:\d+\.\d+)x", line))
    # one way: the floor (one commit) + signatures; ping-pong: a second commit; concurrent: 1/32 of one
    assert found == {"one way": "300.0", "ping-pong": "660.0", "concurrent": f"{60 + 140 / 32 + 100:.1f}"}
    assert figures.as_dict()["ping_pong_least_us"] == 660.0
