"""`make mutation`: how strong the suite is, measured. mutmut (configured in
setup.cfg) changes `myapp/` one small thing at a time and runs the tests that
reach the changed function; a change no test notices "survives". Prints the score
per file and writes docs/test-strength.md with the table and every survivor.

    python bench/mutation.py [--max-children 2] [MUTANT_PATTERN ...]
    python bench/mutation.py --unfinished [myapp/auth/ ...]   # not run or survived
    python bench/mutation.py --survivors [myapp/auth/ ...]    # survived only
    python bench/mutation.py --postgres [myapp/database/ ...] # survivors, on PostgreSQL
    python bench/mutation.py --fresh [myapp/auth/tokens.py ...] # from nothing
    python bench/mutation.py --report-only

A pattern (``"myapp.auth.service*"``) re-runs only those mutants: after a test is
added, its survivors. mutmut keeps its results in mutants/ and re-runs only the
functions that changed since, so a second run is quick. Each run also saves every
result, with its function's hash, to bench/mutation-results.json (committed); a
fresh clone starts from it, so a full run can span several sittings
(``--fresh`` starts the files named, or all of them, from nothing: a kill is kept
while its function is unchanged, even if the test that made it was weakened since).

Equivalent mutants (no test could tell them apart from the original) are listed in
bench/equivalent_mutants.toml, each with its reason; they leave the score's count.

The run uses the SQLite suite. Code only PostgreSQL reaches (VACUUM, row locks,
autocommit reads) is tested by the PostgreSQL environment: ``--postgres`` runs the
survivors of the given files again with ``TEST_DATABASE_URL`` set, in a copy of the
project (mutmut keeps one ``mutants/`` per directory), and the report counts a
mutant that run kills as killed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tomllib
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REPORT = ROOT / "docs" / "test-strength.md"
EQUIVALENT = ROOT / "bench" / "equivalent_mutants.toml"
# The PostgreSQL pass: its copy of the project, and a database of its own (the
# suite creates and drops it), apart from any other test run's.
POSTGRES_COPY = ROOT / ".mutation-postgres"
# The outcome of every mutant run so far, per function with the function's hash,
# committed: a full run takes longer than one sitting, and a fresh clone has no
# mutants/. Restored before mutmut starts, it keeps the results of every function
# unchanged since (mutmut re-runs a function whose hash changed). --fresh drops it,
# for the files named or for all.
RESULTS = ROOT / "bench" / "mutation-results.json"
POSTGRES_URL = os.environ.get(
    "MUTATION_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/myapp_mutation"
)

# The targets: every file of these at 90 %, the package as a whole at 85 %.
FILE_TARGET = 0.90
FILE_TARGET_PATHS = ("myapp/auth/", "myapp/users/", "myapp/extensions.py", "myapp/signing_keys.py")
OVERALL_TARGET = 0.85
# mutmut's statuses, as this report counts them: a timeout is a change the tests
# noticed (it hung or looped), so it counts as killed.
DETECTED = {"killed", "timeout", "caught by type check"}
MISSED = {"survived", "no tests"}


@dataclass
class FileScore:
    path: str
    statuses: Counter = field(default_factory=Counter)
    survivors: list[tuple[str, str]] = field(default_factory=list)  # (name, diff)
    equivalent: list[tuple[str, str, str]] = field(default_factory=list)  # (name, diff, why)
    postgres_kills: list[str] = field(default_factory=list)  # survived SQLite, not PostgreSQL

    @property
    def detected(self) -> int:
        return sum(self.statuses[status] for status in DETECTED)

    @property
    def counted(self) -> int:
        """Mutants that count: detected or missed (not equivalent, not unchecked)."""
        return self.detected + sum(self.statuses[status] for status in MISSED)

    @property
    def score(self) -> float | None:
        return self.detected / self.counted if self.counted else None

    @property
    def has_target(self) -> bool:
        return self.path.startswith(FILE_TARGET_PATHS)


def change_of(diff: str) -> str:
    """The mutant's change, stripped of the diff's headers and context: what
    bench/equivalent_mutants.toml matches on (mutant numbers move as code changes)."""
    lines = [
        line[0] + " " + line[1:].strip()
        for line in diff.splitlines()
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    ]
    return "\n".join(lines)


def function_of(mutant: str) -> str:
    return mutant.rsplit("__mutmut_", 1)[0]


def load_equivalents() -> dict[tuple[str, str], str]:
    entries = tomllib.loads(EQUIVALENT.read_text())["mutant"] if EQUIVALENT.exists() else []
    return {(entry["function"], entry["change"].strip()): entry["reason"] for entry in entries}


def postgres_kills() -> set[str]:
    """The mutants the PostgreSQL pass killed: in its copy, or saved in RESULTS
    (while their function is unchanged)."""
    from mutmut.mutation.data import SourceFileMutationData
    from mutmut.stats import status_by_exit_code
    from mutmut.utils.file_utils import walk_mutatable_files

    kills = saved_postgres_kills()
    if not (POSTGRES_COPY / "mutants").is_dir():
        return kills
    here = Path.cwd()
    os.chdir(POSTGRES_COPY)  # mutmut reads mutants/ relative to the working directory
    try:
        for path in walk_mutatable_files():
            data = SourceFileMutationData(path=path)
            data.load()
            kills |= {
                name
                for name, exit_code in data.exit_code_by_key.items()
                if status_by_exit_code[exit_code] in DETECTED
            }
    finally:
        os.chdir(here)
    return kills


def collect() -> list[FileScore]:
    """Every mutated file's results, from mutants/ (run from the project root), with
    the PostgreSQL pass's kills counted as kills."""
    from mutmut.mutation.data import SourceFileMutationData
    from mutmut.mutation.diff_apply import get_diff_for_mutant
    from mutmut.stats import status_by_exit_code
    from mutmut.utils.file_utils import walk_mutatable_files

    equivalents = load_equivalents()
    on_postgres = postgres_kills()
    used: set[tuple[str, str]] = set()
    scores = []
    for path in sorted(walk_mutatable_files()):
        data = SourceFileMutationData(path=path)
        data.load()
        if not data.exit_code_by_key:
            continue
        score = FileScore(str(path))
        for name, exit_code in sorted(data.exit_code_by_key.items()):
            status = status_by_exit_code[exit_code]
            if status in MISSED and name in on_postgres:
                score.postgres_kills.append(name)
                status = "killed"
            if status in MISSED:
                diff = get_diff_for_mutant(name, path=path)
                key = (function_of(name), change_of(diff))
                if key in equivalents:
                    used.add(key)
                    score.equivalent.append((name, diff, equivalents[key]))
                    status = "equivalent"
                else:
                    score.survivors.append((name, diff))
            score.statuses[status] += 1
        scores.append(score)
    for function, change in sorted(set(equivalents) - used):
        # A stale entry would hide nothing, but it says something that is no longer true.
        print(f"note: equivalent entry matches no survivor: {function}: {change}", file=sys.stderr)
    return scores


def function_key(mutant: str) -> str:
    """The key of ``mutant``'s function in mutmut's hash_by_function_name."""
    return function_of(mutant).rsplit(".", 1)[1]


def current_hashes() -> dict[str, dict[str, str]]:
    from mutmut.mutation.data import SourceFileMutationData
    from mutmut.utils.file_utils import walk_mutatable_files

    hashes = {}
    for path in walk_mutatable_files():
        data = SourceFileMutationData(path=path)
        data.load()
        hashes[str(path)] = data.hash_by_function_name
    return hashes


def saved_postgres_kills() -> set[str]:
    if not RESULTS.exists():
        return set()
    saved = json.loads(RESULTS.read_text())
    hashes = current_hashes()
    return {
        name
        for path, entry in saved["files"].items()
        for name in entry.get("postgres_kills", [])
        if hashes.get(path, {}).get(function_key(name)) == entry["hashes"].get(function_key(name))
    }


def save_results() -> None:
    """Write RESULTS from mutants/ (and the PostgreSQL pass's kills)."""
    from mutmut.mutation.data import SourceFileMutationData
    from mutmut.utils.file_utils import walk_mutatable_files

    on_postgres = postgres_kills()
    files = {}
    for path in sorted(walk_mutatable_files()):
        data = SourceFileMutationData(path=path)
        data.load()
        codes = {name: code for name, code in data.exit_code_by_key.items() if code is not None}
        if not codes:
            continue
        files[str(path)] = {
            "hashes": dict(sorted(data.hash_by_function_name.items())),
            "exit_codes": dict(sorted(codes.items())),
            "postgres_kills": sorted(on_postgres & set(codes)),
        }
    document = {"runs": saved_runs(), "files": files}
    write_results(document)


def write_results(document: dict) -> None:
    RESULTS.write_text(json.dumps(document, indent=1, ensure_ascii=False) + "\n")


def saved_runs() -> list[dict[str, str]]:
    """The runs behind RESULTS: when each started, on which commit, over what."""
    return json.loads(RESULTS.read_text()).get("runs", []) if RESULTS.exists() else []


def record_run(what: str) -> None:
    """Note a run about to start in RESULTS (the page lists them: results carry over
    from one run to the next, so no single commit measured them all)."""
    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    if git("status", "--porcelain", "--", "myapp", "tests"):
        commit += "+changes"
    document = json.loads(RESULTS.read_text()) if RESULTS.exists() else {"files": {}}
    run = {"started": f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC", "commit": commit, "what": what}
    document["runs"] = [*document.get("runs", []), run]
    write_results(document)


def forget(paths: list[str]) -> None:
    """Drop every result of the files ``paths`` start (all files when none), the
    PostgreSQL pass's kills included, so that their mutants run from nothing. Their
    mutated copies go too: mutmut regenerates a file only when its copy is missing
    or older than the source, and only then lists its mutants as not run."""
    from mutmut.utils.file_utils import walk_mutatable_files

    prefixes = tuple(paths)
    if not prefixes:
        shutil.rmtree(ROOT / "mutants", ignore_errors=True)
    for path in walk_mutatable_files():
        if str(path).startswith(prefixes):
            for copy in (ROOT / "mutants" / path, ROOT / "mutants" / f"{path}.meta"):
                copy.unlink(missing_ok=True)
    if RESULTS.exists():
        document = json.loads(RESULTS.read_text())
        document["files"] = {
            path: entry
            for path, entry in document["files"].items()
            if prefixes and not path.startswith(prefixes)
        }
        write_results(document)


def restore_results() -> None:
    """Seed mutants/ with RESULTS where mutants/ has nothing for a file yet."""
    if not RESULTS.exists():
        return
    for path, entry in json.loads(RESULTS.read_text())["files"].items():
        meta = ROOT / "mutants" / f"{path}.meta"
        if meta.exists():
            continue  # this checkout's own results are newer
        meta.parent.mkdir(parents=True, exist_ok=True)
        meta.write_text(
            json.dumps(
                {
                    "exit_code_by_key": entry["exit_codes"],
                    "hash_by_function_name": entry["hashes"],
                    "type_check_error_by_key": {},
                    "durations_by_key": {},
                    "estimated_durations_by_key": {},
                }
            )
        )


def percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f} %"


def table(scores: list[FileScore]) -> tuple[list[str], float | None, list[str]]:
    """(markdown rows, overall score, files under their target)."""
    rows = [
        "| file | mutants | killed | timed out | survived | no tests | equivalent | not run "
        "| score |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    total = Counter()
    under = []
    for score in scores:
        s = score.statuses
        total.update(s)
        mark = ""
        if score.has_target and score.score is not None and score.score < FILE_TARGET:
            under.append(score.path)
            mark = " (under 90 %)"
        rows.append(
            f"| `{score.path}` | {sum(s.values())} | {s['killed']} | {s['timeout']} | "
            f"{s['survived']} | {s['no tests']} | {s['equivalent']} | {s['not checked']} | "
            f"{percent(score.score)}{mark} |"
        )
    detected = sum(total[status] for status in DETECTED)
    counted = detected + sum(total[status] for status in MISSED)
    overall = detected / counted if counted else None
    rows.append(
        f"| **all of myapp/** | {sum(total.values())} | {total['killed']} | {total['timeout']} | "
        f"{total['survived']} | {total['no tests']} | {total['equivalent']} | "
        f"{total['not checked']} | **{percent(overall)}** |"
    )
    return rows, overall, under


def git(*args: str) -> str:
    binary = shutil.which("git")
    if binary is None:
        return ""
    return subprocess.run(
        [binary, *args], cwd=ROOT, capture_output=True, text=True, check=False
    ).stdout.strip()


def write_report(scores: list[FileScore]) -> bool:
    rows, overall, under = table(scores)
    unrun = sum(score.statuses["not checked"] for score in scores)
    total = sum(sum(score.statuses.values()) for score in scores)
    met = not under and overall is not None and overall >= OVERALL_TARGET and not unrun
    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    if git("status", "--porcelain", "--", "myapp", "tests"):
        commit += " with uncommitted changes"
    runs = saved_runs()[-8:]
    lines = [
        "# Test strength",
        "",
        f"Written {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on commit {commit} by `make mutation`"
        " (mutmut, configured in `setup.cfg`; `bench/mutation.py` writes this page).",
        "",
        "A mutant's result stands while its function is unchanged, so results carry "
        "over from run to run (`bench/mutation-results.json`); a function changed since "
        "its run is run again. Tests added after a run are not in its results until its "
        "survivors are run again (`--survivors`). A kept kill is only as good as the "
        "run that made it: a test that failed by chance, or one weakened since, leaves "
        "a kill no current test makes, so `--fresh <files>` runs files again from "
        "nothing. The latest runs:",
        "",
        *(f"- {run['started']}, commit {run['commit']}: {run['what']}" for run in runs),
        "",
        "Each mutant is `myapp/` with one small change: an operator, a constant, a "
        "condition, an argument, a string. The tests that reach the changed function "
        "run against it; if one fails, the mutant is killed. A mutant that survives is "
        "a change of behaviour the suite would not notice. Timeouts count as killed "
        "(the tests noticed it hang). Equivalent mutants, which no test could tell "
        "from the original, leave the count; each is listed below with its reason "
        "(`bench/equivalent_mutants.toml`).",
        "",
        "Limits of the measure. mutmut gives each function the tests that were running "
        "when it was called, and runs them in processes forked from one that has "
        "already imported `myapp/`. So code that runs at import (a schema's fields, "
        "built in its class body; a decorator wrapping a view) is never run again "
        "under a mutant: only tests that build the thing themselves count "
        "(`tests/unit/test_fields.py` builds each custom field). Code that runs once, "
        "when the suite's app is built (`create_app`'s steps, `bearer.install`, "
        "`PasswordHasher.init_app`), is credited to the first test of the session and "
        "to the tests that build an app of their own (`variant_app`). The browser suite "
        "is left out (seconds per test in Chromium): a mutant only it would catch counts "
        "as surviving, so the score errs low. And the run uses "
        "the SQLite suite: code that only PostgreSQL reaches (VACUUM after a bulk load, "
        "autocommit reads, row locks) is checked by the PostgreSQL environment. "
        "`make mutation MUTATION_ARGS='--postgres <files>'` runs those files' "
        "survivors again on PostgreSQL; the mutants it kills count as killed and are "
        "listed below. Survivors of files it was not run on can be PostgreSQL-only.",
        "",
        f"Targets: at least {FILE_TARGET:.0%} on every file of `myapp/auth/`, `myapp/users/` "
        f"and the token check (`myapp/extensions.py`, `myapp/signing_keys.py`), and at "
        f"least {OVERALL_TARGET:.0%} over `myapp/`: **{'met' if met else 'not met'}**.",
        "",
        f"Status: **partial run**, {total - unrun} of {total} mutants run so far (the "
        "scores cover those); `make mutation` runs the rest."
        if unrun
        else f"Status: all {total} mutants run.",
        "",
        *rows,
        "",
        "## Survivors",
        "",
    ]
    postgres = [name for score in scores for name in score.postgres_kills]
    if postgres:
        lines[-2:-2] = [
            "## Killed on PostgreSQL only",
            "",
            f"{len(postgres)} mutants survived the SQLite suite and were killed by the "
            "PostgreSQL one (`--postgres`):",
            "",
            *(f"- `{name}`" for name in postgres),
            "",
        ]
    survivors = [survivor for score in scores for survivor in score.survivors]
    if not survivors:
        lines.append("None.")
    for name, diff in survivors:
        lines += [f"- `{name}`", "", "  ```diff", *("  " + line for line in diff.splitlines()[2:])]
        lines += ["  ```", ""]
    lines += ["", "## Equivalent mutants", ""]
    equivalent = [item for score in scores for item in score.equivalent]
    if not equivalent:
        lines.append("None.")
    for name, diff, reason in equivalent:
        lines.append(f"- `{name}`: {reason}")
        lines += ["", "  ```diff", *("  " + line for line in diff.splitlines()[2:]), "  ```", ""]
    REPORT.write_text("\n".join(lines).rstrip() + "\n")

    print("\n".join(rows))
    print(f"\n{len(survivors)} survivors, {len(equivalent)} equivalent; wrote {REPORT}")
    for path in under:
        print(f"under {FILE_TARGET:.0%}: {path}")
    print(f"targets {'met' if met else 'not met'} (overall {percent(overall)})")
    return met


def generate(max_children: int) -> None:
    """Bring mutants/ up to the current code (what ``mutmut run`` does first): the
    functions changed since their results lose them. Before picking mutants by
    name, so that the names are those of the current code."""
    from mutmut import __main__ as cli

    cli.set_mutant_under_test("mutant_generation")
    os.makedirs("mutants", exist_ok=True)
    cli.copy_src_dir()
    cli.copy_also_copy_files()
    cli.setup_source_paths()
    cli.store_lines_covered_by_tests()
    cli.create_mutants(max_children)


def unfinished(
    scores: list[FileScore], paths: list[str], statuses: set[str] = MISSED | {"not checked"}
) -> list[str]:
    """The mutants of ``paths`` (prefixes; all of myapp/ when empty) whose status is
    one of ``statuses`` (by default: not run, or survived): what is left to do after
    tests were added, by name, so that mutants already killed are not run again.
    Listed equivalents are left out: they survive by definition, and a survivor runs
    every test that reaches its function."""
    from mutmut.mutation.data import SourceFileMutationData
    from mutmut.stats import status_by_exit_code

    equivalent = {name for score in scores for name, _, _ in score.equivalent}
    names = []
    for score in scores:
        if paths and not score.path.startswith(tuple(paths)):
            continue
        data = SourceFileMutationData(path=Path(score.path))
        data.load()
        for name, exit_code in data.exit_code_by_key.items():
            if status_by_exit_code[exit_code] in statuses and name not in equivalent:
                names.append(name)
    return sorted(names)


def retrace(root: Path) -> None:
    """Make mutmut trace every test again. By itself it traces only tests it has not
    seen: a test changed to reach other functions would keep its old ones, and the
    mutants of those functions would not run it."""
    (root / "mutants" / "mutmut-stats.json").unlink(missing_ok=True)


def run_on_postgres(names: list[str], max_children: int) -> None:
    """Run ``names`` with the PostgreSQL suite, in a fresh copy of the project."""
    ignore = shutil.ignore_patterns(
        ".git", ".venv", ".tox", "mutants", POSTGRES_COPY.name, "instance", "__pycache__",
        ".pytest_cache", ".hypothesis", "htmlcov",
    )  # fmt: skip
    shutil.copytree(ROOT, POSTGRES_COPY, ignore=ignore, dirs_exist_ok=True)
    env = {
        **os.environ,
        "TEST_DATABASE_URL": POSTGRES_URL,
        # A PostgreSQL environment that cannot reach PostgreSQL fails, never skips.
        "MYAPP_TEST_EXPECT_BACKEND": "postgresql",
    }
    retrace(POSTGRES_COPY)
    command = [sys.executable, "-m", "mutmut", "run", "--max-children", str(max_children)]
    subprocess.run([*command, *names], check=True, cwd=POSTGRES_COPY, env=env)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("patterns", nargs="*", help="mutant names or globs to (re-)run")
    parser.add_argument("--max-children", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--report-only", action="store_true")
    parser.add_argument(
        "--unfinished",
        action="store_true",
        help="run only the mutants not yet run or surviving, of the files the patterns "
        "start (myapp/auth/ ...), all files when none",
    )
    parser.add_argument(
        "--survivors",
        action="store_true",
        help="like --unfinished, but only the mutants that survived (quick, after a fix)",
    )
    parser.add_argument(
        "--fresh",
        action="store_true",
        help="run the files the patterns start (all files when none) from nothing, "
        f"dropping their results in {RESULTS.name} (after a test was weakened, say)",
    )
    parser.add_argument(
        "--postgres",
        action="store_true",
        help="run the survivors of the files the patterns start again, on PostgreSQL",
    )
    args = parser.parse_args()
    os.chdir(ROOT)  # mutmut works in the project's root: setup.cfg, mutants/
    if args.fresh:
        forget(args.patterns)
    restore_results()
    patterns = args.patterns
    # The current code's mutants, before anything is picked or reported: a function
    # changed since its run has no result.
    generate(args.max_children)
    if args.postgres:
        names = unfinished(collect(), args.patterns, MISSED)
        if names:
            record_run(
                f"the {len(names)} survivors of {' '.join(args.patterns) or 'myapp/'} on PostgreSQL"
            )
            run_on_postgres(names, args.max_children)
        return finish()
    # Picked by name from paths: --fresh's paths are files, not mutmut's globs.
    selective = args.unfinished or args.survivors or (args.fresh and bool(args.patterns))
    if selective:
        statuses = MISSED if args.survivors else MISSED | {"not checked"}
        patterns = unfinished(collect(), args.patterns, statuses)
        if not patterns:
            print("nothing to run")
    if not args.report_only and (patterns or not selective):
        record_run(
            f"{len(patterns)} mutants by name ({' '.join(sys.argv[1:])})"
            if patterns
            else "every mutant without a result"
        )
        retrace(ROOT)
        command = [sys.executable, "-m", "mutmut", "run", "--max-children"]
        subprocess.run([*command, str(args.max_children), *patterns], check=True)
    return finish()


def finish() -> int:
    """Save the results for the next checkout, write the page; 0 when targets are met."""
    save_results()
    return 0 if write_report(collect()) else 1


if __name__ == "__main__":
    sys.exit(main())
