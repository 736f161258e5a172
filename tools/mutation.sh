#!/usr/bin/env bash
# Mutation testing with mutmut (docs/reliability.md). Configuration: [tool.mutmut] in pyproject.toml.
#
#   tools/mutation.sh                    # every phase, every mutant
#   tools/mutation.sh core runner        # some phases
#   SAMPLE=10 tools/mutation.sh adapter  # every 10th mutant of the phase's modules (by sorted name)
#   SURVIVORS=1 tools/mutation.sh core   # again only the survivors, untested and timed-out mutants of the
#                                        # last run, e.g. after adding tests: a killed mutant stays killed
#   .venv/bin/python tools/mutation_summary.py   # kill rates per module, from mutants/
#
# A phase mutates some modules and runs, for each mutant, only the tests of the phase's test
# files that call the mutated function (mutmut records which tests call which function in one
# instrumented run). The phases keep the per-mutant runs short: without them a mutant of
# tolerance.py would run every test that reaches the tolerance model (over three minutes each).
# Installs: pip install -e '.[test,mutation]'. Runs niced, JOBS (default 2) children at a time.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
BIN=$(dirname "$PY")
JOBS=${JOBS:-2}
SAMPLE=${SAMPLE:-1}
SURVIVORS=${SURVIVORS:-}
export HYPOTHESIS_PROFILE=mutation  # tests/conftest.py: derandomized, 10 examples per property
unset PYTHONDONTWRITEBYTECODE  # mutmut's instrumented modules are large (api.py: 16 MB): compile them once

# phase -> "modules | test files | tests left out (too slow for a per-mutant run)"
declare -A PHASES=(
  [core]="equivalence.tolerance equivalence.compare equivalence.case | test_core test_mutation_core |"
  [runner]="equivalence.runner equivalence.records | test_records test_cli test_mutation_records test_mutation_runner | test_cli.py::test_two_runs_write_identical_results"
  [adapter]="equivalence.adapter | test_adapter test_mutation_adapter test_api | test_api.py::test_plugin_fixtures_and_failure_output test_api.py::test_porting_walkthrough_runs"
  [functional]="tf_impl.functional | test_functional_api test_functional_errors test_functional_properties test_mutation_functional |"
  [api]="equivalence.api | test_api test_mutation_api | test_api.py::test_plugin_fixtures_and_failure_output test_api.py::test_porting_walkthrough_runs"
  [cli]="equivalence.cli | test_cli | test_cli.py::test_two_runs_write_identical_results"
  [refcache]="equivalence.refcache | test_refcache | test_refcache.py::test_jobs_workers_load_what_a_serial_run_stored"
  [frameworks]="equivalence.frameworks | test_frameworks |"
)
ORDER=(core runner adapter functional api cli refcache frameworks)
SELECTION=(test_core test_mutation_core test_records test_mutation_records test_mutation_runner test_cli test_adapter
           test_mutation_adapter test_api test_mutation_api test_functional_api test_functional_errors test_functional_properties
           test_mutation_functional test_refcache test_frameworks)  # = pytest_add_cli_args_test_selection in pyproject.toml

[ $# -gt 0 ] && ORDER=("$@")
for phase in "${ORDER[@]}"; do
  spec=${PHASES[$phase]:?unknown phase $phase (known: ${!PHASES[*]})}
  IFS='|' read -r modules tests slow <<<"$spec"
  # PYTEST_ADDOPTS reaches every pytest run of mutmut: the other files of the selection are deselected
  addopts=""
  for t in "${SELECTION[@]}"; do
    [[ " $tests " == *" $t "* ]] || addopts+=" --deselect=tests/$t.py"
  done
  for s in $slow; do addopts+=" --deselect=tests/$s"; done
  export PYTEST_ADDOPTS="$addopts"
  rm -f mutants/mutmut-stats.json  # which tests call which function: recorded again for this phase
  names=()
  for m in $modules; do names+=("$m.*"); done
  if [ -n "$SURVIVORS" ]; then
    mapfile -t names < <("$PY" tools/mutation_summary.py --survivors --timeouts $modules)
    [ ${#names[@]} -gt 0 ] || { echo "== phase $phase: no survivors"; continue; }
  elif [ "$SAMPLE" -gt 1 ]; then
    [ -d mutants ] || { echo "run once without SAMPLE first (it generates mutants/)"; exit 2; }
    mapfile -t names < <("$PY" tools/mutation_summary.py --names --every "$SAMPLE" $modules)
  fi
  echo "== phase $phase: ${#names[@]} name pattern(s); tests: $tests; PYTEST_ADDOPTS=$PYTEST_ADDOPTS"
  nice -n 10 "$BIN/mutmut" run --max-children "$JOBS" "${names[@]}"
done
"$PY" tools/mutation_summary.py
