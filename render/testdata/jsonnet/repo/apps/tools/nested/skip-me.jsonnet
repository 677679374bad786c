error 'excluded by the Application: never evaluated'
