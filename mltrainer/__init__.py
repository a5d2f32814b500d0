"""mltrainer: data access, quantitative models, backtests and reports for S&P 500 research.

This package never imports streamlit; the dashboard (``app.py``, ``pages/``) and the CLI
(``python -m mltrainer``) are thin layers on top of it.
"""

__version__ = "0.1.0"
