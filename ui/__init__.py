"""The only place that turns package objects into Streamlit widgets and caches package
calls (st.cache_resource / st.cache_data). Pages import from here and from mltrainer."""
