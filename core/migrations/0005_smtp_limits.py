from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields
from core.models.enums import SmtpProvider


class Migration(migrations.Migration):
    dependencies = [('models', '0003_inbound_receipt')]

    initial = False

    operations = [
        ops.AddField(
            model_name='Company',
            name='smtp_provider',
            field=fields.CharEnumField(SmtpProvider, null=True, max_length=16),
        ),
        ops.AddField(
            model_name='Company',
            name='smtp_max_per_minute',
            field=fields.IntField(null=True),
        ),
        ops.AddField(
            model_name='Company',
            name='smtp_max_per_day',
            field=fields.IntField(null=True),
        ),
        ops.AddField(
            model_name='Company',
            name='smtp_max_connections',
            field=fields.IntField(null=True),
        ),
        ops.AddField(
            model_name='Company',
            name='smtp_last_error',
            field=fields.TextField(null=True),
        ),
        ops.AddField(
            model_name='Company',
            name='smtp_last_error_at',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name='Message',
            name='expected_send_at',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name='BulkOperation',
            name='expected_completion_at',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
    ]
