DROP TABLE plugin_state;
