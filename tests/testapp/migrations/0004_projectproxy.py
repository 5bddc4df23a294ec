from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ("testapp", "0003_record_user_pk"),
    ]

    operations = [
        migrations.CreateModel(
            name="ProjectProxy",
            fields=[],
            options={"proxy": True, "indexes": [], "constraints": []},
            bases=("testapp.project",),
        ),
    ]
