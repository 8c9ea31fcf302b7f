"""The offline renderer over several processes gives exactly what one process gives."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pyarrow.parquet as pq

from mossforge.config import load_config
from mossforge.generators.render_pool import render_offline, worker_count
from mossforge.stage import run_stage, write_records
from mossforge.stages.render import RenderStage

TYPES = ("exaggerated_risk", "negated_harm", "counterintuitive_interpretation")


def _files(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*.png"))}


def test_one_worker_and_two_render_identical_images_in_order(candidate_factory, tmp_path):
    records = [candidate_factory(f"Question {i}: plan a party in this room?", TYPES[i % 3]) for i in range(10)]
    one = render_offline(records, 96, str(tmp_path / "one"), workers=1)
    seen = []
    two = render_offline(records, 96, str(tmp_path / "two"), workers=2, done=seen.append)
    assert one == two and sum(seen) == len(records)
    assert all(contrast is not None for (_, contrast), r in zip(two, records) if r.stimulus_type == "negated_harm")
    assert _files(tmp_path / "one") == _files(tmp_path / "two") and len(_files(tmp_path / "one")) > 10


def test_render_batch_output_is_the_same_for_any_number_of_cpu_workers(candidate_factory, tmp_path):
    records = [candidate_factory(f"Can I break this {i}?", TYPES[i % 3]) for i in range(9)]
    batch = write_records(records, tmp_path / "in.parquet")
    outputs = {}
    for workers in (1, 2):
        cfg = load_config(overrides={"render.size": 64, "run.cpu_workers": workers})
        result = run_stage(RenderStage(), cfg, [str(batch)], tmp_path / f"run-{workers}", "0",
                           str(tmp_path / f"images-{workers}"))
        assert result.report.kept == len(records)
        outputs[workers] = pq.read_table(result.kept[0]).to_pylist()
    assert outputs[1] == outputs[2]
    assert _files(tmp_path / "images-1") == _files(tmp_path / "images-2")


def test_cpu_workers_zero_means_every_core():
    assert worker_count(0) >= 1 and worker_count(3) == 3


def _run_script(tmp_path, candidate_factory, body: str):
    """Run a Python script in a new process with four candidates written to `BATCH` (its path) and
    `IMAGES` (a folder to render into) defined at its top."""
    import subprocess
    import sys

    batch = write_records([candidate_factory(f"Question {i}?") for i in range(4)], tmp_path / "in.parquet")
    script = tmp_path / "script.py"
    script.write_text(f"BATCH, IMAGES = {str(batch)!r}, {str(tmp_path / 'images')!r}\n{body}")
    return subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=180)


def test_a_script_without_a_main_guard_runs_once(candidate_factory, tmp_path):
    proc = _run_script(tmp_path, candidate_factory,
                       "import sys\n"
                       "from mossforge.stage import read_records\n"
                       "from mossforge.generators.render_pool import render_offline\n"
                       "print('body', file=sys.stderr)\n"
                       "records = read_records([BATCH])\n"
                       "from mossforge.generators.render_pool import prestart\n"
                       "prestart(2)\n"  # the forkserver started early (as `mossforge run` does) imports no script either
                       "print(len(render_offline(records, 64, IMAGES, workers=2)))\n")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "4" and proc.stderr.count("body") == 1


def test_a_process_started_by_multiprocessing_exits_after_rendering(candidate_factory, tmp_path):
    """A served flow run is such a process (Prefect's runner spawns it). Such a process joins its
    children before the pool's own exit cleanup runs: idle workers used to keep it, and `mossforge
    serve` waiting for it, alive for ever."""
    proc = _run_script(tmp_path, candidate_factory,
                       "import multiprocessing\n"
                       "def render():\n"
                       "    from mossforge.stage import read_records\n"
                       "    from mossforge.generators.render_pool import render_offline\n"
                       "    assert len(render_offline(read_records([BATCH]), 64, IMAGES, workers=2)) == 4\n"
                       "if __name__ == '__main__':\n"
                       "    child = multiprocessing.get_context('spawn').Process(target=render)\n"
                       "    child.start()\n"
                       "    child.join(60)\n"
                       "    print(child.exitcode)\n"
                       "    if child.exitcode is None:\n"
                       "        child.kill()\n")
    assert proc.stdout.strip() == "0", (proc.stdout, proc.stderr[-2000:])  # "None": still running after 60 s

# Pixels (not PNG bytes) of five cards at two sizes, as the renderer of 2026-12-01 drew them
# before its canvas was filled a faster way (issue 18): a speed-up must not move a pixel.
# (Pillow 13.0's bundled font; another Pillow build may draw text differently.)
PINNED_PIXELS = {
    256: [("3c65c8cbb67982a3", None), ("e3332686888911ce", None), ("98c492a576dfd127", "dfd7a6d9c42ea06f"),
          ("8dd10d9eb82bbefc", "a0926a2adb2a19b8"), ("9eceea9981f14ef5", "e10e52feeb5b6340")],
    512: [("953cca7f25dba099", None), ("9f7c63ce592d70e1", None), ("1411813f14478b1b", "5167f48b2ee935c7"),
          ("d75ce36950ee238a", "1d24a382f18dec14"), ("6a5556dbb3587fb6", "143b00bd3ff3f958")],
}


def test_the_renderer_draws_the_pinned_pixels():
    import PIL
    import pytest
    from test_render_offline import make_candidate, negated

    from mossforge.generators.render_offline import OfflineRenderer

    if PIL.__version__.split(".")[0] != "13":
        pytest.skip(f"pixels pinned with Pillow 13 (this is {PIL.__version__})")
    cards = [make_candidate(), make_candidate("counterintuitive_interpretation", domain="city street at night", seed=7),
             negated("prohibition_sign"), negated("red_x", seed=3), negated("slogan_banner", domain="beach")]
    for size, pinned in PINNED_PIXELS.items():
        renderer = OfflineRenderer(size=size)
        drawn = [tuple(hashlib.sha256(image.tobytes()).hexdigest()[:16] if image else None
                       for image in renderer.render_pil(card)) for card in cards]
        assert drawn == pinned, size


def test_cancel_stops_a_render_at_once_and_later_ones_too(candidate_factory, tmp_path, monkeypatch):
    """Ctrl-C calls `cancel` (mossforge/cli/build.py): the cards not started are dropped, the render
    waiting on them ends with RunInterrupted, and no later render in the process starts."""
    import threading
    import time

    import pytest

    from mossforge.errors import RunInterrupted
    from mossforge.generators import render_pool

    monkeypatch.setattr(render_pool, "_cancelled", False)  # put back after the test
    records = [candidate_factory(f"Question {i}: plan a party here?", TYPES[i % 3]) for i in range(200)]
    render_offline(records[:2], 64, str(tmp_path / "warm"), workers=2)  # the pool is running
    done, outcome = [], {}

    def render():
        try:
            render_offline(records, 256, str(tmp_path / "images"), workers=2, done=done.append)
        except RunInterrupted as error:
            outcome["error"] = error

    thread = threading.Thread(target=render)
    thread.start()
    deadline = time.monotonic() + 60
    while len(done) < 4 and time.monotonic() < deadline:
        time.sleep(0.01)
    at_cancel = len(done)
    render_pool.cancel()
    thread.join(60)
    assert not thread.is_alive() and "cancelled" in str(outcome.get("error")), (at_cancel, len(done), outcome)
    assert len(done) < len(records)
    with pytest.raises(RunInterrupted):
        render_offline(records[:2], 64, str(tmp_path / "after"), workers=1)


def test_a_pool_cancelled_before_its_first_card_lets_the_process_exit(candidate_factory, tmp_path):
    """Its workers start at once; a pool shut down before any card was sent to it never told them
    to leave, and the process waited for them at exit for ever (pytest did, in CI)."""
    proc = _run_script(tmp_path, candidate_factory,
                       "import os, threading\n"
                       "from mossforge.generators import render_pool\n"
                       "if __name__ == '__main__':\n"
                       "    render_pool._pool(2)\n"
                       "    import time; time.sleep(3)\n"  # (its workers up and waiting for work)
                       "    render_pool.cancel()\n"
                       "    timer = threading.Timer(60, os._exit, (9,))\n"  # still here after 60 s: exit 9
                       "    timer.daemon = True\n"
                       "    timer.start()\n")
    assert proc.returncode == 0, (proc.returncode, proc.stderr[-2000:])


def test_a_render_starting_as_the_run_is_cancelled_is_interrupted_not_an_error(candidate_factory, tmp_path, monkeypatch):
    """A render task that took the pool just before `cancel` shut it down (a served run cancelled
    from the UI) failed with "RuntimeError: cannot schedule new futures after shutdown" and a
    traceback; it is the same interruption as any other."""
    import pytest

    from mossforge.errors import RunInterrupted
    from mossforge.generators import render_pool

    monkeypatch.setattr(render_pool, "_cancelled", False)
    records = [candidate_factory(f"Question {i}?", TYPES[i % 3]) for i in range(4)]
    pool_of = render_pool._pool

    def taken_then_cancelled(workers):
        pool = pool_of(workers)
        render_pool.cancel()  # between the render's `_pool(...)` and its first card
        return pool

    monkeypatch.setattr(render_pool, "_pool", taken_then_cancelled)
    with pytest.raises(RunInterrupted, match="cancelled"):
        render_offline(records, 64, str(tmp_path / "images"), workers=2)

def test_a_killed_caller_leaves_no_worker_or_forkserver_behind(candidate_factory, tmp_path):
    """`kill -9` (or SIGTERM) of a run that rendered: its workers and forkserver go too. They used
    to stay forever: a worker holds both ends of its task queue's pipe, so it never sees the end,
    and the forkserver waits for its last worker."""
    import os
    import signal
    import subprocess
    import sys
    import time
    import uuid

    batch = write_records([candidate_factory(f"Question {i}?") for i in range(4)], tmp_path / "in.parquet")
    token = uuid.uuid4().hex
    mark = f"MOSSFORGE_TEST_MARK={token}".encode()
    script = tmp_path / "script.py"
    script.write_text(
        "import time\n"
        "from mossforge.stage import read_records\n"
        "from mossforge.generators.render_pool import render_offline\n"
        f"render_offline(read_records([{str(batch)!r}]), 64, {str(tmp_path / 'images')!r}, workers=2)\n"
        "print('rendered', flush=True)\n"
        "time.sleep(600)\n")

    def ours() -> list[int]:  # the script's processes: it, its forkserver, its workers
        found = []
        for proc in Path("/proc").iterdir():
            try:
                if proc.name.isdigit() and mark in (proc / "environ").read_bytes():
                    found.append(int(proc.name))
            except OSError:
                continue
        return found

    proc = subprocess.Popen([sys.executable, str(script)], env={**os.environ, "MOSSFORGE_TEST_MARK": token},
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "rendered"
    assert len(ours()) >= 4  # the script, the forkserver and two workers
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + 30
    while ours() and time.monotonic() < deadline:
        time.sleep(0.2)
    left = ours()
    for pid in left:  # do not leave them to the next test
        os.kill(pid, signal.SIGKILL)
    assert not left, f"{len(left)} processes outlived the killed caller"


def test_a_sigterm_to_the_whole_process_group_leaves_the_pool_working(candidate_factory, tmp_path):
    """`timeout` sends SIGTERM to the whole process group; the run handles it (mossforge/cli/build.py)
    and stops the pool itself. The forkserver and the workers ignore it: a forkserver that died of it
    closed the pipes through which the pool watches its workers, and every render in progress
    failed with BrokenProcessPool (a traceback per render task) instead of the run stopping cleanly."""
    import os
    import signal
    import time
    from multiprocessing import forkserver

    from mossforge.generators import render_pool

    records = [candidate_factory(f"Question {i}: plan a party here?", TYPES[i % 3]) for i in range(6)]
    render_offline(records[:2], 64, str(tmp_path / "before"), workers=2)
    pool = render_pool.running_pool()
    pids = [*pool._processes, forkserver._forkserver._forkserver_pid]
    assert len(pids) == 3
    for pid in pids:
        os.kill(pid, signal.SIGTERM)
    time.sleep(1.0)
    for pid in pids:
        os.kill(pid, 0)  # alive (ProcessLookupError otherwise)
    refs = render_offline(records, 64, str(tmp_path / "after"), workers=2)
    assert len(refs) == len(records) and render_pool.running_pool() is pool
