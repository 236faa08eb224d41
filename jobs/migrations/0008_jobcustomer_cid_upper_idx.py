from django.db import migrations

# The customer search's suggestions compare UPPER(cid) (jobs/views/lists.py); this index answers
# them on PostgreSQL and SQLite alike, where the plain cid index cannot. It lives here only, as
# SQL that both engines accept, until JobCustomer.Meta.indexes declares it.


class Migration(migrations.Migration):
    dependencies = [
        ("jobs", "0007_job_cancelled"),
    ]

    operations = [
        migrations.RunSQL(
            sql="CREATE INDEX jobcustomer_cid_upper_idx ON jobs_jobcustomer (UPPER(cid))",
            reverse_sql="DROP INDEX jobcustomer_cid_upper_idx",
        ),
    ]
