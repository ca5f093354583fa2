#!/bin/bash
# Load the Spider dump without its first four lines (an all-privileges test user), then
# create the read-only account agents connect with.
set -euo pipefail
tail -n +5 /spider/ic_spider_dbs.sql | mysql -uroot -p"$MYSQL_ROOT_PASSWORD"
databases=$(grep -o '^CREATE DATABASE  IF NOT EXISTS `[a-z_0-9]*`' /spider/ic_spider_dbs.sql | cut -d'`' -f2)
{
  echo "CREATE USER 'agent'@'%' IDENTIFIED BY '${IPR_AGENT_PASSWORD}';"
  for db in $databases; do echo "GRANT SELECT, SHOW VIEW ON \`$db\`.* TO 'agent'@'%';"; done
} | mysql -uroot -p"$MYSQL_ROOT_PASSWORD"
