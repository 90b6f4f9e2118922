"""`python -m brandsafe.training` (or `accelerate launch -m brandsafe.training`): train one recipe."""
from brandsafe.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["train", *__import__("sys").argv[1:]]))
