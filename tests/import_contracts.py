"""An import-linter contract type of our own: no module imports one that imports it back.

import-linter's built-in `acyclic_siblings` looks for loops among the children of each
package, so it misses a module that imports its own package, whose __init__ imports it
(`jobs.services.submit` importing `jobs.services`). This one looks at every module: a loop
through any number of modules, imports inside functions included, breaks it.
"""

from __future__ import annotations

import grimp
from importlinter.application import output
from importlinter.domain import fields
from importlinter.domain.contract import Contract, ContractCheck


def module_loops(graph: grimp.ImportGraph, modules: set[str]) -> list[tuple[str, ...]]:
    """One shortest loop for each group of these modules that import each other."""
    loops = []
    seen: set[str] = set()
    for module in sorted(modules):
        if module in seen:
            continue
        # The modules this one reaches and that reach it back: its strongly connected group.
        group = graph.find_upstream_modules(module) & graph.find_downstream_modules(module)
        seen |= group
        if not group:
            continue
        chains = (
            graph.find_shortest_chain(importer=imported, imported=module)
            for imported in graph.find_modules_directly_imported_by(module) & group
        )
        loops.append((module, *min((chain for chain in chains if chain), key=len)))
    return loops


class AcyclicModulesContract(Contract):
    type_name = "acyclic_modules"

    packages = fields.ListField(subfield=fields.StringField())

    def check(self, graph: grimp.ImportGraph, verbose: bool) -> ContractCheck:
        modules = {
            module
            for package in self.packages
            for module in (package, *graph.find_descendants(package))
        }
        loops = module_loops(graph, modules)
        return ContractCheck(kept=not loops, metadata={"loops": loops})

    def render_broken_contract(self, check: ContractCheck) -> None:
        for loop in check.metadata["loops"]:
            output.print_error(" -> ".join(loop))
            output.new_line()
