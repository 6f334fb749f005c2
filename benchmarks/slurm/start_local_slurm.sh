#!/bin/sh
# A single-node Slurm on 127.0.0.1 (Debian's packages), for the opt-in check of
# `sslbench run --executor slurm` against a real Slurm (docs/scaling.md). Needs root:
#     apt-get install -y --no-install-recommends slurm-wlm munge slurmdbd mariadb-server
#     sh benchmarks/slurm/start_local_slurm.sh
# It writes /etc/slurm/slurm.conf and slurmdbd.conf for this host (CPUs and memory as the
# machine has them), a munge key if there is none, a MariaDB database for the accounting
# that `sacct` (and so submitit) reads, and starts munged, mariadbd, slurmdbd, slurmctld and
# slurmd. Process tracking without cgroups (proctrack/linuxproc, task/none): containers
# often lack a writable cgroup file system.
set -eu
HOST=$(hostname -s)
CPUS=$(nproc)
MEM=$(awk '/MemTotal/ {print int($2 / 1024) - 1024}' /proc/meminfo)
mkdir -p /etc/slurm /var/spool/slurmctld /var/spool/slurmd /var/log/slurm /run/munge /run/mysqld
if [ ! -s /etc/munge/munge.key ]; then
    mkdir -p /etc/munge
    dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key 2>/dev/null
fi
chown -R munge:munge /etc/munge /run/munge 2>/dev/null || true
chmod 0400 /etc/munge/munge.key
chown mysql:mysql /run/mysqld 2>/dev/null || true

cat > /etc/slurm/slurmdbd.conf <<CONF
AuthType=auth/munge
DbdHost=localhost
DbdAddr=127.0.0.1
SlurmUser=root
LogFile=/var/log/slurm/slurmdbd.log
PidFile=/run/slurmdbd.pid
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=slurm
StoragePass=slurm-local
StorageLoc=slurm_acct_db
CONF
chmod 0600 /etc/slurm/slurmdbd.conf

cat > /etc/slurm/slurm.conf <<CONF
ClusterName=sslbench-local
SlurmctldHost=$HOST(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
SchedulerType=sched/builtin
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MpiDefault=none
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$MEM State=UNKNOWN
PartitionName=debug Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
CONF

pgrep -x munged >/dev/null || runuser -u munge -- /usr/sbin/munged
if ! pgrep -x mariadbd >/dev/null; then
    [ -d /var/lib/mysql/mysql ] || mariadb-install-db --user=mysql >/dev/null
    runuser -u mysql -- mariadbd --bind-address=127.0.0.1 >/var/log/slurm/mariadb.log 2>&1 &
    for _ in $(seq 1 30); do mariadb -e 'select 1' >/dev/null 2>&1 && break; sleep 1; done
fi
mariadb -e "CREATE DATABASE IF NOT EXISTS slurm_acct_db;
            CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY 'slurm-local';
            GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost'; FLUSH PRIVILEGES;"
pgrep -x slurmdbd >/dev/null || slurmdbd
for _ in $(seq 1 30); do sacctmgr -n list cluster >/dev/null 2>&1 && break; sleep 1; done
sacctmgr -i add cluster sslbench-local >/dev/null 2>&1 || true
# slurmctld reads slurm.conf at start: restart it if it ran without accounting
if pgrep -x slurmctld >/dev/null; then scontrol shutdown >/dev/null 2>&1 || true; sleep 2; fi
pgrep -x slurmctld >/dev/null || slurmctld
pgrep -x slurmd >/dev/null || slurmd
for _ in $(seq 1 30); do
    if sinfo -h -o '%T' 2>/dev/null | grep -q idle && sacct -n >/dev/null 2>&1; then
        sinfo
        exit 0
    fi
    sleep 1
done
echo "slurm did not come up: see /var/log/slurm/" >&2
sinfo >&2 || true
exit 1
