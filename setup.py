"""Packaging: the Lua scripts in ``lua/`` install as ``tradeagg/lua``."""

from setuptools import setup

setup(
    package_dir={"tradeagg.lua": "lua"},
    package_data={"tradeagg.lua": ["*.lua", "lib/*.lua"]},
)
