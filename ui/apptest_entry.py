"""Runs app.py for AppTest from a folder without a ``pages/`` directory.

AppTest picks Streamlit's old pages-directory mode whenever the main script has a
``pages/`` folder beside it, and then reruns the page file alone instead of app.py
(the sidebar vanishes after the first widget change). Real ``streamlit run`` uses
st.navigation as intended; the browser tests cover that path.
"""

import runpy

from mltrainer.config import PROJECT_ROOT

runpy.run_path(str(PROJECT_ROOT / "app.py"), run_name="__main__")
