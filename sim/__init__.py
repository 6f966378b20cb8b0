"""The SimPy twin of the mesh: the same topology and policies, simulated at scale.

Nothing is simulated yet: the simulator is the subject of its own issue, which builds on the
policies in ``mesh.policies``. The package exists so that the layout is the one notebooks import.
"""

__all__: list[str] = []
