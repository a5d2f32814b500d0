"""Parameter specs -> widgets (ui/params.py): the right widget, bounds, step, format and
tooltip for each spec; values from a link seed them; a bad link falls back."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest


def _script():
    import streamlit as st

    from mltrainer.models.registry import get_model
    from ui.params import param_widgets

    initial = st.session_state.get("initial")
    values = param_widgets(get_model("risk/StressTestingModel"), "t", initial=initial)
    st.session_state["values"] = values


def test_each_spec_gets_a_fitting_widget():
    at = AppTest.from_function(_script).run()
    assert not at.exception
    sliders = {s.key: s for s in at.slider}
    conf = sliders["t:confidence"]
    assert (conf.min, conf.max, conf.step, conf.value) == (0.9, 0.999, 0.001, 0.99)
    assert conf.proto.format == "%.3f" and conf.help  # 0.995 must not show as "1.00"
    assert sliders["t:window"].value == 252 and sliders["t:window"].step == 1
    # 10,000 to 10 billion in steps of 10,000: a number box, not an unusable slider
    box = at.number_input(key="t:portfolio_value")
    assert box.value == 1_000_000.0 and box.step == 10_000.0
    assert at.session_state["values"]["crash_size"] == -0.2


def test_link_values_seed_the_widgets_and_bad_ones_fall_back():
    at = AppTest.from_function(_script)
    at.session_state["initial"] = {"confidence": "0.975", "window": "100", "crash_size": "-9"}
    at.run()
    assert not at.exception
    values = at.session_state["values"]
    assert values["confidence"] == 0.975 and values["window"] == 100
    assert values["crash_size"] == -0.2  # outside [-0.6, -0.01]: the default
