from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.fields.base import OnDelete
from uuid import uuid4
from tortoise import fields
from core.models.enums import SenderNameMode, SmtpProvider, SmtpSecurity

class Migration(migrations.Migration):
    dependencies = [('models', '0006_template_languages')]

    initial = False

    operations = [
        ops.CreateModel(
            name='Subsidiary',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('sender_name_mode', fields.CharEnumField(default=SenderNameMode.EMPLOYEE, description='EMPLOYEE: EMPLOYEE\nCOMPANY: COMPANY', enum_type=SenderNameMode, max_length=8)),
                ('recruiting_address', fields.CharField(null=True, max_length=320)),
                ('smtp_host', fields.CharField(null=True, max_length=255)),
                ('smtp_port', fields.IntField(null=True)),
                ('smtp_username', fields.CharField(null=True, max_length=255)),
                ('smtp_password_encrypted', fields.TextField(null=True, unique=False)),
                ('smtp_security', fields.CharEnumField(null=True, description='NONE: NONE\nSTARTTLS: STARTTLS\nTLS: TLS', enum_type=SmtpSecurity, max_length=8)),
                ('smtp_provider', fields.CharEnumField(SmtpProvider, null=True, max_length=16)),
                ('smtp_max_per_minute', fields.IntField(null=True)),
                ('smtp_max_per_day', fields.IntField(null=True)),
                ('smtp_max_connections', fields.IntField(null=True)),
                ('smtp_last_error', fields.TextField(null=True)),
                ('smtp_last_error_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('company', fields.ForeignKeyField('models.Company', source_field='company_id', db_constraint=True, to_field='id', related_name='subsidiaries', on_delete=OnDelete.CASCADE)),
                ('name', fields.CharField(max_length=200)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'subsidiary', 'app': 'models', 'unique_together': (('company', 'name'),), 'pk_attr': 'id', 'table_description': 'A legal entity of the company that hires under its own name, address and server.'},
            bases=['Model'],
        ),
        ops.AddField(
            model_name='Position',
            name='subsidiary',
            field=fields.ForeignKeyField('models.Subsidiary', source_field='subsidiary_id', null=True, db_constraint=True, to_field='id', related_name='positions', on_delete=OnDelete.SET_NULL),
        ),
        ops.AddField(
            model_name='Message',
            name='subsidiary',
            field=fields.ForeignKeyField('models.Subsidiary', source_field='subsidiary_id', null=True, db_constraint=True, to_field='id', related_name='messages', on_delete=OnDelete.SET_NULL),
        ),
    ]
