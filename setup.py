"""Build hooks: the gRPC stubs are generated from proto/ at build/install time, never committed;
the cache-hit path's C extension is compiled where a C compiler is (optional: without one the
service runs its Python reference, service/answers.py's PyHitPath)."""
import os
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).parent.resolve()


def generate_stubs() -> None:
    from grpc_tools import protoc  # build requirement, see pyproject.toml

    proto_root = ROOT / "proto"
    include = Path(protoc.__file__).parent / "_proto"
    for proto in sorted(proto_root.rglob("*.proto")):
        args = ["protoc", f"-I{proto_root}", f"-I{include}", f"--python_out={ROOT}", f"--pyi_out={ROOT}",
                f"--grpc_python_out={ROOT}", str(proto)]
        if protoc.main(args) != 0:
            raise SystemExit(f"protoc failed on {proto}")
    (ROOT / "brandsafe" / "v1" / "__init__.py").touch()


class BuildPyWithStubs(build_py):
    def run(self):
        generate_stubs()
        super().run()


# Metadata generation (and editable installs) look for the package folder before build_py
# runs, so generate once up front too; protoc is fast and the output is deterministic.
generate_stubs()
# BRANDSAFE_PURE=1: no C extension, so the wheel is py3-none-any and installs on any CPython 3.11+
# (loadtest/gpu/fetch_wheels.sh builds the one carried to the GPU test machine, which runs 3.12).
ext_modules = [] if os.environ.get("BRANDSAFE_PURE") == "1" else [
    Extension("brandsafe.service._hitpath", ["service/_hitpath.c"], optional=True, extra_compile_args=["-O2"])]
setup(cmdclass={"build_py": BuildPyWithStubs}, ext_modules=ext_modules)
