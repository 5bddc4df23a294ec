from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ("testapp", "0002_record_error_traceback"),
    ]

    operations = [
        migrations.CreateModel(
            name="ProjectProxy",
            fields=[],
            options={"proxy": True, "indexes": [], "constraints": []},
            bases=("testapp.project",),
        ),
    ]
