DROP TABLE plugin_switches;
