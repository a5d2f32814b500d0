"""Plotly figure builders: pure functions from data to ``go.Figure`` (no I/O, no Streamlit).

Shared by the dashboard pages and the HTML/PDF reports so both draw the same pictures.
"""
