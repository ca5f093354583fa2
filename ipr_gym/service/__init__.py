"""The envs as services: OpenEnv servers (``server``) with signed snapshot tokens
(``tokens``), their client (``client``) and a gymnasium env that plays on a server
(``remote_env``). Needs ``pip install 'ipr[serve]'``."""
