"""Layer specs are frozen: no attribute of a constructed spec (or of a spec's Component) can be changed."""

import numpy as np
import pytest
from amaranth.back import rtlil
from networks import bypass_net, plain_net

from mixq_hw.layers.spec import FrozenSpecError, LayerSpec, SpecComponent
from mixq_hw.pipeline import LayerFold, plan_stages


def _specs() -> list[LayerSpec]:
    """Every stage spec of three small plans (conv engines, windows, requants, pool, reorg, concat, FIFOs, ...)."""
    rng = np.random.default_rng(0)
    plans = [plan_stages(plain_net(rng), {}), plan_stages(bypass_net(rng), {"c1": LayerFold(2, 2, 2)}),
             plan_stages(plain_net(rng), {"c1": LayerFold(requant="threshold")})]
    return [stage.spec for plan in plans for stage in plan.stages if isinstance(stage.spec, LayerSpec)]


SPECS = _specs()


def test_the_plans_cover_many_spec_kinds():
    assert len({type(spec).__name__ for spec in SPECS}) >= 8


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: f"{type(s).__name__}-{s.name}")
def test_assigning_or_deleting_a_field_of_a_spec_raises(spec):
    fields = [k for k in vars(spec) if not k.startswith("_")]
    assert fields
    for key in fields:
        before = getattr(spec, key)
        with pytest.raises(FrozenSpecError, match=key):
            setattr(spec, key, before)
        with pytest.raises(FrozenSpecError, match=key):
            delattr(spec, key)
        assert getattr(spec, key) is before
    with pytest.raises(FrozenSpecError, match="extra"):
        spec.extra = 1


@pytest.mark.parametrize("kind", sorted({type(s).__name__ for s in SPECS}))
def test_a_built_component_is_frozen_and_elaborates(kind):
    spec = next(s for s in SPECS if type(s).__name__ == kind)
    component = spec.build()
    assert isinstance(component, SpecComponent) and isinstance(component, type(spec))
    assert component.ports().members.keys() == component.signature.members.keys()
    with pytest.raises(FrozenSpecError, match="name"):
        component.name = "other"
    for port in component.signature.members:
        with pytest.raises(FrozenSpecError, match=port):
            setattr(component, port, None)
    component.scratch = 1              # a Component may keep attributes of its own for elaboration
    assert "module" in rtlil.convert(component, name="top")


def test_every_layer_component_is_a_spec_component_without_its_own_init():
    """A Component of a layer spec inherits SpecComponent's construction (ports from the spec) and adds
    only ``elaborate``: a class that calls ``wiring.Component.__init__`` itself would skip the freeze."""
    import importlib
    import inspect
    import pkgutil

    from amaranth.lib import wiring

    import mixq_hw.layers as layers

    found = []
    for info in pkgutil.iter_modules(layers.__path__):
        module = importlib.import_module(f"mixq_hw.layers.{info.name}")
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if issubclass(cls, LayerSpec) and issubclass(cls, wiring.Component) and cls.__module__ == module.__name__:
                found.append(cls.__name__)
                assert issubclass(cls, SpecComponent), cls
                assert "__init__" not in vars(cls), cls
    assert len(found) >= 15, found
