"""Packaging: the Lua scripts in ``lua/`` install as ``tradeagg/lua``; the screener's files
in ``tradeagg/web`` install with the package."""

from setuptools import setup

setup(
    package_dir={"tradeagg.lua": "lua"},
    package_data={"tradeagg.lua": ["*.lua", "lib/*.lua"], "tradeagg.web": ["*.html", "*.js", "*.css"]},
)
