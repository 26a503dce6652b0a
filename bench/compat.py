"""This tree's benchmark files, for an older revision's library (bench/run and bench/breakdown
`--against REV`): where REV lacks what a benchmark calls, the benchmark does what REV itself
did in its place."""
import os
import subprocess

# Each entry: what REV's library is searched for (`git grep`), where, what this tree's benchmark
# files call, and what they call instead where REV lacks it (the interceptor's own check then).
COMPAT = [
    ("fn wanted", "runtime/src/aws", "if !AwsCall::wanted() {",
     "let current = tracing::Span::current();\n    if current.is_none() || current.is_disabled() {"),
    ("fn udp_pacing", "runtime/src/init",
     ".udp_pacing(xray_lambda::Pacing::LAMBDA.with_read_interval(Duration::from_micros(1)))",
     ".daemon_pacing(xray_lambda::Pacing {\n            read_interval: Duration::from_micros(1),\n            ..xray_lambda::Pacing::LAMBDA\n        })"),
]


# The workspace's own packages. Cargo names a path package's artifacts by its path within the
# workspace, so REV's checkout and this tree write the same files in the shared target directory;
# and where REV's sources of a package are older than the artifact (a checkout is new, this
# tree's files are not), cargo takes the other tree's build as fresh. Measured so, "now" ran
# this tree's library with ea2f416's macros.
OWN_PACKAGES = ["xray-lambda", "xray-lambda-macros", "xray-lambda-size"]


def clean_own_packages(tree, env):
    """Removes the workspace's own release artifacts, so that `tree`'s next build compiles its
    own sources (the dependencies stay built)."""
    args = ["cargo", "clean", "--release"]
    for package in OWN_PACKAGES:
        args += ["-p", package]
    subprocess.run(args, cwd=tree, env=env, check=True, capture_output=True)


def copy_bench_files(root, rev, tree, benches=("invocation", "records")):
    """Writes this tree's `runtime/benches/<bench>.rs` into `tree` (a checkout of `rev`)."""
    lacking = [(new, old) for (search, where, new, old) in COMPAT
               if subprocess.run(["git", "grep", "-q", search, rev, "--", where],
                                 cwd=root, capture_output=True).returncode != 0]
    for bench in benches:
        with open(os.path.join(root, "runtime", "benches", f"{bench}.rs")) as f:
            text = f.read()
        for new, old in lacking:
            text = text.replace(new, old)
        with open(os.path.join(tree, "runtime", "benches", f"{bench}.rs"), "w") as f:
            f.write(text)
