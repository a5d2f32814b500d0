"""Links made before a parameter was renamed still set it (ui/params.py RENAMED_PARAMS).

``min_history`` of the volatility and market-condition regime models is now
``min_observations`` (it shadowed ``Model.min_history()``): a Model Lab link
(``p.min_history=...``) and a Regimes page link (``rg:<model>:min_history=...``) made
before the rename reproduce the setting.
"""

from __future__ import annotations

from streamlit.testing.v1 import AppTest


def _script():
    import streamlit as st

    from mltrainer.models.registry import get_model
    from ui.params import param_widgets

    cls = get_model(st.session_state.get("key", "regime/VolatilityRegimeModel"))
    initial = st.session_state.get("initial")
    bind = st.session_state.get("bind", False)
    st.session_state["values"] = param_widgets(cls, "rg:Model", initial=initial, bind=bind)


def test_an_old_model_lab_link_sets_the_renamed_parameter():
    at = AppTest.from_function(_script)
    at.session_state["initial"] = {"min_history": "300", "window": "30"}
    at.run(timeout=60)
    assert not at.exception and not at.warning
    assert at.session_state["values"]["min_observations"] == 300
    assert at.slider(key="rg:Model:min_observations").value == 300
    assert at.session_state["values"]["window"] == 30


def test_the_new_name_wins_and_a_bad_old_value_is_named():
    at = AppTest.from_function(_script)
    at.session_state["key"] = "regime/MarketConditionRegimeModel"
    at.session_state["initial"] = {"min_history": "300", "min_observations": "400"}
    at.run(timeout=60)
    assert at.session_state["values"]["min_observations"] == 400
    at = AppTest.from_function(_script)
    at.session_state["initial"] = {"min_history": "5"}  # below the 63 allowed
    at.run(timeout=60)
    assert at.session_state["values"]["min_observations"] == 252
    assert "p.min_history" in at.warning[0].value


def test_an_old_regimes_page_link_sets_the_renamed_parameter():
    at = AppTest.from_function(_script)
    at.session_state["bind"] = True
    at.query_params["rg:Model:min_history"] = "300"
    at.run(timeout=60)
    assert not at.exception and not at.warning
    assert at.session_state["values"]["min_observations"] == 300
    at.run(timeout=60)  # and it stays so on the next rerun
    assert at.session_state["values"]["min_observations"] == 300
